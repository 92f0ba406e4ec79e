package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/wasmhost"
)

// resolverInfo is one version in GET /api/v1/resolvers.
type resolverInfo struct {
	hub.ResolverVersion
	Stats wasmhost.Stats `json:"stats"`
}

func (a *Hub) putResolver(c echo.Context) error {
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	if a.opt.Resolvers == nil {
		return fmt.Errorf("%w: this hub runs no wasm resolvers", replica.ErrInvalid)
	}
	body, err := readBody(c, int64(a.opt.Resolvers.Limits().ModuleBytes))
	if err != nil {
		return err
	}
	v, created, err := a.h.PutResolver(c.Request().Context(), name, body)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, resolverInfo{ResolverVersion: v, Stats: a.opt.Resolvers.Stats(v.Name, v.Version)})
}

func (a *Hub) listResolvers(c echo.Context) error {
	out := []resolverInfo{}
	for _, v := range a.h.Resolvers() {
		info := resolverInfo{ResolverVersion: v, Stats: wasmhost.Stats{Failures: map[string]int64{}}}
		if a.opt.Resolvers != nil {
			info.Stats = a.opt.Resolvers.Stats(v.Name, v.Version)
		}
		out = append(out, info)
	}
	return c.JSON(http.StatusOK, map[string]any{"resolvers": out})
}

func (a *Hub) resolveConflict(c echo.Context) error {
	name, err := pathParam(c, "c")
	if err != nil {
		return err
	}
	cid, err := strconv.ParseInt(c.Param("cid"), 10, 64)
	if err != nil || cid <= 0 {
		return fmt.Errorf("%w: conflict id %q is not a number", replica.ErrInvalid, c.Param("cid"))
	}
	body, err := readBody(c, replica.MaxDocumentSize+1024)
	if err != nil {
		return err
	}
	var r hub.Resolution
	if err := decodeStrict(body, &r); err != nil {
		return err
	}
	lsn, err := a.h.ResolveConflict(c.Request().Context(), name, cid, r)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"id": cid, "status": replica.StatusResolved, "lsn": lsn})
}
