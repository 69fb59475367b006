-- Records rotation $1's slot as emptied, and forgets rotations long past.
WITH old AS (DELETE FROM teleport.rotation WHERE n < $1 - 3)
UPDATE teleport.rotation SET emptied_at = pg_catalog.now() WHERE n = $1
