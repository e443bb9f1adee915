package embedbroker

import (
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mqttkeep/mqttkeep/internal/wsconn"
)

// wsListener accepts MQTT-over-WebSocket connections: an HTTP server
// upgrades each request and hands the connection to Accept.
type wsListener struct {
	ln    net.Listener
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newWSListener(ln net.Listener) *wsListener {
	l := &wsListener{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	up := websocket.Upgrader{
		Subprotocols: []string{wsconn.Subprotocol},
		CheckOrigin:  func(*http.Request) bool { return true },
	}
	l.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			select {
			case l.conns <- wsconn.New(ws):
			case <-l.done:
				_ = ws.NetConn().Close()
			}
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = l.srv.Serve(ln)
	}()
	return l
}

func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *wsListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		_ = l.srv.Close()
		l.wg.Wait()
	})
	return nil
}

func (l *wsListener) Addr() net.Addr { return l.ln.Addr() }

// listenRetry binds addr, retrying until timeout while the port is busy.
func listenRetry(addr string, timeout time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(timeout)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
