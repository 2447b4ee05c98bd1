"""A package, so that conftest.py here is the module unit.conftest: without it, it and
../conftest.py would both be `conftest`, and tests importing from ../conftest.py could get this
one."""
