class data_source -- A metric that can be recorded in a host's or VM's RRD statistics.
options 

field name/label string ro-run = "" -- Name of the metric.
field name/description string ro-run = "" -- Readable explanation of what the metric measures.
field enabled bool ro-run -- True while the metric is being recorded.
field standard bool ro-run -- True if recorded by default; such metrics cannot be switched off.
field units string ro-run -- Unit in which the value is expressed.
field min float ro-run -- Lowest value the metric can take.
field max float ro-run -- Highest value the metric can take.
field value float ro-run -- Most recent reading of the metric.
