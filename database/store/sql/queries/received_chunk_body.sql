SELECT body FROM teleport.received_chunk WHERE source = $1 AND seq = $2 AND chunk = $3
