-- When source $1 took the tick closing batch $2, from its first stored chunk.
SELECT tick_time FROM teleport.received_chunk WHERE source = $1 AND seq = $2 AND chunk = 0
