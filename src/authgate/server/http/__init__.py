"""HTTP plumbing of the server below the endpoints: strict form parsing, and the connection
protocol `authgate serve` runs (deadlines for a request's head and body)."""
