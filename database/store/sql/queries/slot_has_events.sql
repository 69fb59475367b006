-- Whether slot $1 holds an event. Only a slot with events is rotated away
-- from: the rows carried into a slot when an older one is emptied (a
-- cursor, a tick) do not make an idle source rotate again and again.
SELECT EXISTS (SELECT 1 FROM teleport.event WHERE slot = $1::smallint)
