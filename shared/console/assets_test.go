package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
)

// echartsSHA256 is dist/echarts.min.js of Apache ECharts 6.1.0 (scripts/fetch-echarts.sh).
const echartsSHA256 = "b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0"

func TestAssets(t *testing.T) {
	c, err := New(Deps{PublicBaseURL: "https://hub.example.com"}, strings.Repeat("k", 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"console.css", "charts.js", "echarts.min.js"} {
		u := c.assetURL(plain)
		name, ok := strings.CutPrefix(u, "https://hub.example.com/console/assets/")
		if !ok || !strings.Contains(name, ".") || name == plain {
			t.Fatalf("%s is served as %s, want a hashed name under /console/assets/", plain, u)
		}
		gz := c.Serve(t.Context(), Request{Method: http.MethodGet, Path: "assets/" + name, AcceptEncoding: "gzip, deflate, br"})
		plainResp := c.Serve(t.Context(), Request{Method: http.MethodGet, Path: "assets/" + name})
		if gz.File == nil || plainResp.File == nil || !gz.File.Immutable {
			t.Fatalf("%s: %+v %+v", plain, gz, plainResp)
		}
		body := plainResp.File.Body
		if gz.File.Gzip {
			zr, err := gzip.NewReader(bytes.NewReader(gz.File.Body))
			if err != nil {
				t.Fatal(err)
			}
			inflated, _ := io.ReadAll(zr)
			if !bytes.Equal(inflated, body) {
				t.Errorf("%s: the gzipped and the plain answers differ", plain)
			}
		} else if !bytes.Equal(gz.File.Body, body) {
			t.Errorf("%s: answers differ", plain)
		}
		if plain == "echarts.min.js" {
			sum := sha256.Sum256(body)
			if !gz.File.Gzip || hex.EncodeToString(sum[:]) != echartsSHA256 {
				t.Errorf("echarts.min.js: gzip %v, sha256 %x, want the pinned release served gzipped", gz.File.Gzip, sum)
			}
		}
	}
	if r := c.Serve(t.Context(), Request{Method: http.MethodGet, Path: "assets/console.css"}); r.Status != http.StatusNotFound {
		t.Errorf("an asset without its hash: %d", r.Status)
	}
	for header, want := range map[string]bool{"gzip": true, "gzip;q=0": false, "br, *": true, "identity": false, "GZIP; q=0.5": true, "": false} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v", header, got)
		}
	}
}
