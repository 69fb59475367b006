-- Ticks older than the horizon and than every batch still kept.
DELETE FROM teleport.tick
WHERE id < $1 AND id < coalesce((SELECT min(from_tick) FROM teleport.batch), $1)
