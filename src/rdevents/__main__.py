from .cli import main

if __name__ == "__main__":  # not when a worker process of `import events` imports it
    main()
