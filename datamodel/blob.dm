class blob -- Container for arbitrary binary data, transferred over HTTP via the /blob handler.
options db getall events

field uuid string ro-run -- Unique identifier of this blob.
field name/label string rw = "" -- Short readable name.
field name/description string rw = "" -- Free-text notes about the blob.
field size int ro-run -- Length of the stored data, in bytes.
field public bool rw = false -- If true, the data can be downloaded without authentication.
field last_updated datetime ro-ctor -- Time the blob's contents were last written.
field mime_type string ro-ctor -- Content type of the data; application/octet-stream when given as empty.

message destroy role=pool-operator -- Deletes the blob together with its data.
  param self ref<blob> -- Blob to delete.

message create -> ref<blob> role=pool-operator -- Creates an empty blob; the data is uploaded afterwards with an HTTP PUT.
  param mime_type string -- Content type; an empty string means application/octet-stream.
  param public bool = false -- Whether the data may be read without logging in.
  result -- Reference to the new blob.
