"""The web UI: a Flask application served by waitress inside the control process."""
