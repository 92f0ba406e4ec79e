package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test, and a leaf
// certificate it signed for 127.0.0.1, as PEM files in a directory.
type testCA struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgesync test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := testCA{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	ca.pool.AddCert(caCert)
	for file, block := range map[string]*pem.Block{
		ca.caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		ca.certFile: {Type: "CERTIFICATE", Bytes: leafDER},
		ca.keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// trust makes the node's test client speak HTTPS to it, trusting ca.
func (ca testCA) trust(n *e2eNode) {
	n.https = true
	n.client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: ca.pool}
}

// newTLSCluster starts a hub serving HTTPS with a certificate of ca.
func newTLSCluster(t *testing.T, ca testCA) *e2eCluster {
	t.Helper()
	hubBin, edgeBin := e2eBinaries(t)
	h := newE2ENode(t, "hub", "cloudhub listening", hubBin, t.TempDir(), "--admin-token", e2eAdminToken, "--durability", "normal",
		"--tls-cert", ca.certFile, "--tls-key", ca.keyFile)
	h.auth = e2eAdminToken
	ca.trust(h)
	h.start()
	h.listen = h.addr
	return &e2eCluster{t: t, edgeBin: edgeBin, hub: h}
}

// TestE2E_TLSHubWithPrivateCA: a hub serves its API and the sync WebSocket
// over TLS; an edge given the CA with --hub-ca syncs over wss:// (and serves
// its own API over HTTPS), an edge without it refuses the certificate, says
// so, and keeps retrying.
func TestE2E_TLSHubWithPrivateCA(t *testing.T) {
	ca := newTestCA(t)
	c := newTLSCluster(t, ca)

	// The API answers over HTTPS, and plain HTTP is not served.
	var st e2eHubStatus
	c.hub.call(http.MethodGet, "/api/v1/status", nil, http.StatusOK, &st)
	if st.HubID == "" {
		t.Fatalf("GET https://%s/api/v1/status: no hubId", c.hub.addr)
	}
	if resp, err := http.Get("http://" + c.hub.addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET http://%s/healthz: 200 over plain HTTP, want it refused", c.hub.addr)
		}
	}
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", map[string]any{"partitionKey": "/pk"}, http.StatusCreated, nil)

	good := newE2ENode(t, "edge good", "edgenode listening", c.edgeBin, t.TempDir(),
		"--hub", "https://"+c.hub.addr, "--token", c.registerEdge("good", nil), "--hub-ca", ca.caFile, "--durability", "normal",
		"--tls-cert", ca.certFile, "--tls-key", ca.keyFile)
	ca.trust(good) // its local API over HTTPS too
	good.start()
	bad := newE2ENode(t, "edge bad", "edgenode listening", c.edgeBin, t.TempDir(),
		"--hub", "wss://"+c.hub.addr+"/api/v1/sync", "--token", c.registerEdge("bad", nil), "--durability", "normal")
	bad.start()

	good.call(http.MethodPut, "/api/v1/containers/notes/docs/n1", map[string]any{"id": "n1", "pk": "a", "text": "over wss"}, http.StatusCreated, nil)
	c.waitSynced(15*time.Second, good)
	if st := good.mustEdgeStatus(); !strings.HasPrefix(st.Hub, "wss://") {
		t.Errorf("edge good: hub %q, want a wss:// URL", st.Hub)
	}
	var doc e2eDoc
	c.hub.call(http.MethodGet, "/api/v1/containers/notes/docs/n1", nil, http.StatusOK, &doc)
	if doc["text"] != "over wss" {
		t.Errorf("hub: n1 = %v, want the edge's write", doc)
	}

	// The edge without the CA reports the certificate in its status and
	// its log, at WARN, and tries again.
	e2eWaitFor(t, 15*time.Second, "edge bad reports the untrusted certificate twice", func() error {
		st, err := bad.edgeStatus()
		if err != nil {
			return err
		}
		if st.Connected {
			t.Fatalf("edge bad: connected to a hub whose certificate it cannot verify")
		}
		if !strings.Contains(st.LastError, "certificate") {
			return fmt.Errorf("lastError %q, want it to name the certificate", st.LastError)
		}
		if n := strings.Count(bad.log.String(), "hub certificate not trusted"); n < 2 {
			return fmt.Errorf("%d warnings about the certificate in the log, want 2 or more", n)
		}
		return nil
	})
	if !strings.Contains(bad.log.String(), "level=WARN") {
		t.Errorf("edge bad: no WARN line in its log")
	}
	var edges struct {
		Edges []struct {
			Name   string `json:"name"`
			Online bool   `json:"online"`
		} `json:"edges"`
	}
	c.hub.call(http.MethodGet, "/api/v1/edges", nil, http.StatusOK, &edges)
	for _, e := range edges.Edges {
		if e.Name == "bad" && e.Online {
			t.Errorf("hub: edge bad is online")
		}
	}
}

// TestServe_TLSFlagsGoTogether: --tls-cert without --tls-key (and the
// reverse, and through the environment) is a usage error.
func TestServe_TLSFlagsGoTogether(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "cert only", args: []string{"--tls-cert", ca.certFile}, want: "give both or neither"},
		{name: "key only", args: []string{"--tls-key", ca.keyFile}, want: "give both or neither"},
		{name: "cert from env", args: nil, env: map[string]string{"CLOUDHUB_TLS_CERT": ca.certFile}, want: "give both or neither"},
		{name: "key is not the cert's", args: []string{"--tls-cert", ca.certFile, "--tls-key", ca.caFile}, want: "--tls-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr strings.Builder
			args := append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-token", "x"}, tt.args...)
			code := run(t.Context(), args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", args, code, stderr.String(), tt.want)
			}
		})
	}
}
