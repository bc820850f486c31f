// A Go program, built static (CGO_ENABLED=0) as Go builds by default:
// the runtime's threads, futexes and signals, its timers (epoll and a
// pipe or eventfd), goroutines and channels, the garbage collector, a
// temporary file, a child process, and stdin.
package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := 0
			for j := 0; j < 200000; j++ {
				s += j % (i + 1)
			}
			mu.Lock()
			total += s
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	fmt.Println("goroutines:", total)

	ch := make(chan int)
	go func() {
		for i := 0; i < 5; i++ {
			ch <- i * i
		}
		close(ch)
	}()
	for v := range ch {
		fmt.Print(v, " ")
	}
	fmt.Println()

	start := time.Now()
	time.Sleep(30 * time.Millisecond)
	<-time.After(20 * time.Millisecond)
	ticker := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 3; i++ {
		<-ticker.C
	}
	ticker.Stop()
	fmt.Println("timers:", time.Since(start) >= 65*time.Millisecond)

	words := map[string]int{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		for _, w := range strings.Fields(sc.Text()) {
			words[w]++
		}
	}
	keys := make([]string, 0, len(words))
	for k := range words {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Println(k, words[k])
	}
	fmt.Printf("%x\n", sha256.Sum256([]byte("lego")))

	f, err := os.CreateTemp("", "lego-go-*")
	if err != nil {
		fmt.Println("temp file:", err)
	} else {
		f.WriteString("in a temp file")
		f.Close()
		b, _ := os.ReadFile(f.Name())
		os.Remove(f.Name())
		fmt.Println("temp file:", string(b))
	}

	out, err := exec.Command("/bin/busybox", "echo", "from a child").Output()
	fmt.Printf("child: %q %v\n", out, err)

	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = byte(i)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Println("memory:", big[12345], len(big), ms.NumGC > 0)
}
