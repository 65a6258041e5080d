"""The composition roots: the service (`create_app`), the viewers' gateway, the command line and
the demo's own operator. Nothing below imports from here."""
