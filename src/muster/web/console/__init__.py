"""The admin console: server-rendered pages under /console."""
