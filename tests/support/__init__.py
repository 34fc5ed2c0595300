"""What the tests share: helpers, the servers they start (WordPress, SeaweedFS), proxies, receivers."""
