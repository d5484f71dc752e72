package pool

import "testing"

func TestClassBoundaries(t *testing.T) {
	cases := []struct{ n, want int }{
		{0, 64}, {1, 64}, {64, 64}, {65, 128}, {128, 128}, {129, 256},
		{4096, 4096}, {4097, 8192}, {65535, 65536}, {65536, 65536}, {65537, 65537},
	}
	for _, tc := range cases {
		if got := ClassSize(tc.n); got != tc.want {
			t.Errorf("ClassSize(%d) = %d, want %d", tc.n, got, tc.want)
		}
		b := Get(tc.n)
		if len(b) != tc.n || cap(b) != tc.want {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tc.n, len(b), cap(b), tc.n, tc.want)
		}
		Put(b)
	}
}

func TestCacheReuseAndBound(t *testing.T) {
	var c Cache
	b := c.Get(100)
	b[0] = 42
	c.Put(b)
	b2 := c.Get(120)
	if &b2[:1][0] != &b[:1][0] {
		t.Fatalf("cache did not reuse the freed buffer of the same class")
	}
	for i := 0; i < cacheDepth*2; i++ {
		c.Put(make([]byte, 256))
	}
	if got := len(c.free[class(256)]); got != cacheDepth {
		t.Fatalf("cache holds %d buffers of a class, want bound %d", got, cacheDepth)
	}
	c.Put(make([]byte, 100)) // not a class size: dropped
	if got := len(c.free[class(100)]); got != 0 {
		t.Fatalf("odd-capacity buffer was cached (%d)", got)
	}
}

func TestGetPutNoAllocs(t *testing.T) {
	var c Cache
	c.Put(c.Get(1000))
	if n := testing.AllocsPerRun(100, func() { c.Put(c.Get(1000)) }); n != 0 {
		t.Fatalf("Cache Get/Put allocates %v times", n)
	}
}
