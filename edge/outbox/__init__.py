"""The edge's durable outbox: hand-offs to the server tier, written first, then sent."""
