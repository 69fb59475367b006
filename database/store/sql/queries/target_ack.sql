UPDATE teleport.target
SET acked_seq = greatest(acked_seq, $2), applied_seq = greatest(applied_seq, $3)
WHERE name = $1
