package broker

import (
	"fmt"
	"math/rand"
	"os"
	"sync"
	"time"
)

func bad(ch chan int) {
	_ = time.Now()
	time.Sleep(time.Second)
	go fmt.Println(os.Args, rand.Int(), sync.Mutex{}, sync.Pool{})
	select {
	case <-ch:
	}
}
