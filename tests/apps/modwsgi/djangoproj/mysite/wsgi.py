"""WSGI config for mysite, as ``django-admin startproject`` writes it: it imports
``mysite.settings``, so the project directory (the one holding ``mysite/``) must be on
sys.path: the working directory, or --app-dir (mod_wsgi's python-path=, or the home= that
mod_wsgi-express's --working-directory sets)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
