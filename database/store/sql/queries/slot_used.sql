-- Whether slot $1 holds any row.
SELECT EXISTS (SELECT 1 FROM teleport.event WHERE slot = $1::smallint)
    OR EXISTS (SELECT 1 FROM teleport.tick WHERE slot = $1::smallint)
    OR EXISTS (SELECT 1 FROM teleport.batch WHERE slot = $1::smallint)
    OR EXISTS (SELECT 1 FROM teleport.batch_ddl WHERE slot = $1::smallint)
    OR EXISTS (SELECT 1 FROM teleport.cursor WHERE slot = $1::smallint)
    OR EXISTS (SELECT 1 FROM teleport.ack WHERE slot = $1::smallint)
