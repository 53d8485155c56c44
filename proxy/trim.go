package proxy

// TrimPools drops the buffers the proxy keeps for reuse (held responses,
// read-ahead, backend read buffers) and returns how many it dropped. The
// pools keep what the busiest moment needed, which a quiet proxy need not
// hold: after TrimPools a collection gives that memory back. Safe at any
// time; a request after it takes a fresh buffer.
func TrimPools() int {
	return heldBufs.lifo.drain() + stashBufs.lifo.drain() + backendReaders.drain()
}
