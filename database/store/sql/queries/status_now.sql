-- This database's clock, fixed for the transaction.
SELECT pg_catalog.now()
