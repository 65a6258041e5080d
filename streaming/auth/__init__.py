"""Who may do what: passwords, cookie logins with CSRF tokens, Basic auth, roles and the audit
log."""
