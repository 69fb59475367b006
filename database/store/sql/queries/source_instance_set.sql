-- Records the instance source $1's chunks come from, the first time one is named.
UPDATE teleport.source SET instance = $2::uuid WHERE name = $1 AND instance IS NULL
