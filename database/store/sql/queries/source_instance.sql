-- The instance source $1's chunks come from; no row for an unknown source.
SELECT instance::text FROM teleport.source WHERE name = $1
