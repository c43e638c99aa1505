"""Who may reach an orstream gRPC server and what they may call, shared by the edge and the
server tier: bearer tokens with roles, TLS (optionally mutual), and the rule that only a
loopback address may be served without them unless the user says so."""
