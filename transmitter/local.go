package transmitter

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/pagarme/teleport/config"
)

// LocalInstance returns the base URL of the instance whose server cfg
// describes, as a command on its host reaches it (loopback for a wildcard
// address), and a client for it: TLS with the instance's own certificate
// as the root when it serves TLS. Requests need cfg.AuthToken, if set.
func LocalInstance(cfg config.Server) (base string, client *http.Client, err error) {
	host := cfg.Hostname
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLSCertFile != "" {
		scheme = "https"
		pem, err := os.ReadFile(cfg.TLSCertFile)
		if err != nil {
			return "", nil, fmt.Errorf("read server.tls_cert_file: %w", err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(cfg.Port)), &http.Client{Transport: tr}, nil
}
