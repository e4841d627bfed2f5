package sqlitedb

// Queued is how many writes wait for the committer (tests use it to line writes up behind one).
func (db *DB) Queued() int { return len(db.c.reqs) }
