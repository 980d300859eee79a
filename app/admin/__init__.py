"""The audit log of every change (written by the domain services) and the admin routes that span domains: stats and the audit log."""
