// An HTTP server and its client in one Go program, over TCP on the
// loopback (IPv4), an echo over IPv6, and a refused connection.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		return
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "hello %s %s", r.URL.Path, strings.ToUpper(string(body)))
	}))
	for i := 0; i < 3; i++ {
		resp, err := http.Post("http://"+ln.Addr().String()+fmt.Sprintf("/n%d", i), "text/plain", strings.NewReader("abc"))
		if err != nil {
			fmt.Println("post:", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(b))
	}
	l6, err := net.Listen("tcp", "[::1]:0")
	fmt.Println("v6 listen:", err == nil)
	if err == nil {
		go func() { c, _ := l6.Accept(); io.Copy(c, c); c.Close() }()
		c, err := net.Dial("tcp", l6.Addr().String())
		if err != nil {
			fmt.Println("dial:", err)
			return
		}
		c.Write([]byte("echo"))
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		fmt.Println(string(buf))
	}
	_, err = net.Dial("tcp", "127.0.0.1:1")
	fmt.Println("refused:", err != nil)
}
