-- Events of transactions that ended before the horizon's snapshot: every
-- target has stored them (or never takes them). A chunk at a time, found
-- through the xid index and deleted by their row addresses.
DELETE FROM teleport.event
WHERE ctid = ANY (ARRAY(SELECT ctid FROM teleport.event WHERE xid < $1::text::xid8 LIMIT $2))
