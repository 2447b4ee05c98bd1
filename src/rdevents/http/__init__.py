"""The HTTP layer: routes, authentication, request hygiene and error rendering."""
