-- Events of transactions that ended before the horizon's snapshot: every
-- target has stored them (or never takes them). A chunk at a time.
DELETE FROM teleport.event
WHERE id IN (SELECT id FROM teleport.event WHERE xid < $1::text::xid8 LIMIT $2)
