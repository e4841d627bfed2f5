package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// The console's static files are compiled in and served by the console itself (from the connect
// function in AWS), so a page never loads anything from another site. Each is served under a
// name that carries a hash of its content, so a browser may keep it for a year.

//go:embed assets/*.css assets/*.js assets/*.js.gz
var assetFS embed.FS

// asset is one static file.
type asset struct {
	name        string // the name it is served under, with its content hash
	contentType string
	body        []byte
	gzipped     bool
}

// assets holds the console's static files by their served names.
type assets struct {
	byName map[string]asset
	// url maps a file's plain name ("console.css") to its served name.
	url map[string]string
}

func loadAssets() assets {
	a := assets{byName: map[string]asset{}, url: map[string]string{}}
	entries, err := assetFS.ReadDir("assets")
	if err != nil {
		panic("console: embedded assets: " + err.Error()) // compiled in; cannot fail
	}
	for _, e := range entries {
		body, err := assetFS.ReadFile("assets/" + e.Name())
		if err != nil {
			panic("console: embedded asset " + e.Name() + ": " + err.Error())
		}
		plain, gz := strings.CutSuffix(e.Name(), ".gz")
		sum := sha256.Sum256(body)
		ext := path.Ext(plain)
		served := strings.TrimSuffix(plain, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		ct := "text/css; charset=utf-8"
		if ext == ".js" {
			ct = "text/javascript; charset=utf-8"
		}
		a.byName[served] = asset{name: served, contentType: ct, body: body, gzipped: gz}
		a.url[plain] = served
	}
	return a
}

// serveAsset answers /console/assets/NAME. A gzipped file goes out as it is stored to a browser
// that accepts gzip, and inflated for one that does not.
func (c *Console) serveAsset(req Request, name string) Response {
	a, ok := c.assets.byName[name]
	if !ok || !isGet(req.Method) {
		return page(http.StatusNotFound, "Not found", `<p>There is no such file.</p>`)
	}
	f := &File{ContentType: a.contentType, Body: a.body, Immutable: true}
	if a.gzipped {
		if acceptsGzip(req.AcceptEncoding) {
			f.Gzip = true
		} else {
			zr, err := gzip.NewReader(bytes.NewReader(a.body))
			if err != nil {
				return page(http.StatusInternalServerError, "Please try again", `<p>This file could not be read.</p>`)
			}
			plain, err := io.ReadAll(zr)
			if err != nil {
				return page(http.StatusInternalServerError, "Please try again", `<p>This file could not be read.</p>`)
			}
			f.Body = plain
		}
	}
	return Response{Status: http.StatusOK, File: f}
}

// acceptsGzip reads an Accept-Encoding header: gzip (or *) listed without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}

// assetURL is the public address of a static file by its plain name.
func (c *Console) assetURL(plain string) string {
	return c.URL("assets/" + c.assets.url[plain])
}
