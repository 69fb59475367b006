UPDATE teleport.target SET last_tick = $2, next_seq = $3 WHERE name = $1
