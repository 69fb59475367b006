UPDATE teleport.batch SET sent_at = pg_catalog.now() WHERE target = $1 AND seq = $2 AND sent_at IS NULL
