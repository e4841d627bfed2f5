package sqlitedb

// Queued is how many writes wait for the committer (tests use it to line writes up behind one).
func (db *DB) Queued() int { return len(db.c.reqs) }

// RestartWALAt sets the WAL size, in pages, past which the committer restarts the WAL.
func (db *DB) RestartWALAt(pages int64) { db.c.restartAt.Store(pages) }

// Checkpoint runs one of the background checkpoints now.
func (db *DB) Checkpoint() { db.c.checkpoint() }
