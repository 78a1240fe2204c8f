"""What several test files share: engine rigs, console doubles, fault injection, a real PostgreSQL,
tmux sessions, journal rows... A test file imports from here, never from another test file."""
