package phone

import (
	"strings"
	"sync"
)

// Cache remembers the numbers E164 normalized recently. A customer's number comes back with
// every event of their orders (created, paid, shipped, delivered, refunded) and with every
// later order, and libphonenumber's parse and validation cost more than the rest of an order's
// normalization, so ingest keeps one Cache for the life of its process.
//
// It holds at most twice its size in entries, in two generations: a number found in the older
// one moves to the newer, and when the newer is full the older is dropped. So a number used
// again within size lookups stays, and memory stays bounded whatever the traffic. It is safe
// for concurrent use.
type Cache struct {
	size      int
	normalize func(raw, countryCode string) string

	mu       sync.Mutex
	recent   map[cacheKey]string
	previous map[cacheKey]string
}

type cacheKey struct{ raw, country string }

// maxCachedInput bounds the inputs a Cache keeps; longer ones are never valid (E164 refuses
// raw numbers over 64 bytes) and are not worth keeping.
const maxCachedInput = 80

// NewCache returns a Cache of size entries per generation (at least 1).
func NewCache(size int) *Cache { return newCache(size, E164) }

func newCache(size int, normalize func(raw, countryCode string) string) *Cache {
	size = max(size, 1)
	return &Cache{size: size, normalize: normalize, recent: make(map[cacheKey]string, size)}
}

// E164 is the package's E164, remembered.
func (c *Cache) E164(raw, countryCode string) string {
	if len(raw) > maxCachedInput || len(countryCode) > maxCachedInput {
		return c.normalize(raw, countryCode)
	}
	k := cacheKey{raw, countryCode}
	c.mu.Lock()
	v, ok := c.recent[k]
	if !ok {
		if v, ok = c.previous[k]; ok {
			c.put(k, v)
		}
	}
	c.mu.Unlock()
	if ok {
		return v
	}
	v = c.normalize(raw, countryCode)
	// The inputs may be slices of a larger payload; the cache keeps copies, not the payload.
	k = cacheKey{strings.Clone(raw), strings.Clone(countryCode)}
	c.mu.Lock()
	c.put(k, v)
	c.mu.Unlock()
	return v
}

// put adds an entry to the recent generation, starting a new one when it is full. c.mu is held.
func (c *Cache) put(k cacheKey, v string) {
	if len(c.recent) >= c.size {
		c.previous, c.recent = c.recent, make(map[cacheKey]string, c.size)
	}
	c.recent[k] = v
}

// ingestCacheSize holds the numbers of the last 4,096 to 8,192 customers seen, about 1 MB at
// most: a process ingesting a busy store's orders meets the same customers again within that.
const ingestCacheSize = 4096

// CachedE164 is E164 behind a Cache sized for a process that ingests: ingest and serve each
// make one at start and keep it.
func CachedE164() func(raw, countryCode string) string { return NewCache(ingestCacheSize).E164 }
