class data_source --
options 

field name/label string ro-run = "" --
field name/description string ro-run = "" --
field enabled bool ro-run --
field standard bool ro-run --
field units string ro-run --
field min float ro-run --
field max float ro-run --
field value float ro-run --
