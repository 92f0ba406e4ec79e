package web

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// The web UI: static files embedded in the binaries (nothing is loaded from
// the network, edges run offline). web/ui/CONTRACT.md is the contract
// between the pages, the API and the browser tests.
//
//go:embed ui
var uiFiles embed.FS

// serveUI serves the page of dir ("hub" or "edge") at / and its files under
// /ui/ (web/ui/common under /ui/common/).
func serveUI(e *echo.Echo, dir string) {
	page, _ := fs.Sub(uiFiles, "ui/"+dir)
	common, _ := fs.Sub(uiFiles, "ui/common")
	send := func(c echo.Context, fsys fs.FS, name string) error {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return echo.NewHTTPError(http.StatusNotFound, "no such file: "+name)
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		h := c.Response().Header()
		h.Set(echo.HeaderCacheControl, "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		return c.Blob(http.StatusOK, ct, b)
	}
	e.GET("/", func(c echo.Context) error { return send(c, page, "index.html") })
	e.GET("/ui/*", func(c echo.Context) error {
		name := c.Param("*")
		if !fs.ValidPath(name) || strings.HasPrefix(name, ".") {
			return echo.NewHTTPError(http.StatusNotFound, "no such file")
		}
		if rest, ok := strings.CutPrefix(name, "common/"); ok {
			return send(c, common, rest)
		}
		return send(c, page, name)
	})
}
