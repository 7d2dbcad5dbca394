"""The WSGI entry point for gunicorn: ``gunicorn selfservice.wsgi:app``."""

from selfservice import create_app

app = create_app()
