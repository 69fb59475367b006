UPDATE teleport.source SET error = NULL, error_seq = NULL, error_at = NULL
WHERE name = $1 AND error IS NOT NULL
