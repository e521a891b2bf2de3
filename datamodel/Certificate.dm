class Certificate -- An X.509 certificate used to secure TLS connections with hosts in the pool.
options db getall events

enum certificate_type -- Role a certificate plays in the pool's TLS trust model.
  value ca -- Trusted CA certificate shared by every member of the pool.
  value host -- Server certificate presenting a host to clients outside the pool.
  value host_internal -- Certificate a host uses to identify itself to other pool members.

field uuid string ro-run -- Unique identifier of this certificate object.
field name string ro-run = "" -- Certificate name; only set for certificates of type ca.
field type certificate_type ro-run = host -- Which kind of certificate this is: ca, host or host_internal.
field host ref<host> ro-ctor = NULL -- Host on which this certificate is installed (NULL for pool-wide ones).
field not_before datetime ro-ctor = 19700101T00:00:00Z -- Start of the validity period; the certificate is invalid before this time.
field not_after datetime ro-ctor = 19700101T00:00:00Z -- Expiry time; the certificate is invalid after this time.
field fingerprint string ro-ctor = "" -- SHA-256 fingerprint (hash) of the certificate.
