"""digest: trending research papers in your inbox."""
