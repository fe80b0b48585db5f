"""Mail: rendering templates, building messages, SMTP and the local sink."""
