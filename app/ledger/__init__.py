"""Money: prices, the cost ledger, quotas and reservations, usage."""
