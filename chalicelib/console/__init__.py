"""The operator console: static pages (plain ES modules, no build step) served by the API itself."""
