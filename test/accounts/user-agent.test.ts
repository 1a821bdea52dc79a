import { expect, it } from 'vitest';
import { describeUserAgent } from '../../src/accounts/user-agent.js';
import { USER_AGENTS } from '../helpers/user-agents.js';

it('names the common browsers and systems, and says so when it cannot', () => {
  const cases: Array<[string | undefined, string, string]> = [
    [USER_AGENTS.firefoxLinux, 'Firefox 133', 'Linux'],
    [USER_AGENTS.safariIphone, 'Safari 17', 'iOS 17'],
    [USER_AGENTS.edgeWindows, 'Edge 131', 'Windows'],
    [USER_AGENTS.chromeAndroid, 'Chrome 131', 'Android 14'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15', 'Safari 18', 'macOS'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0', 'Opera 115', 'macOS'],
    ['Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1', 'Chrome 131', 'iPadOS 17'],
    ['Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36', 'Samsung Internet 26', 'Android 14'],
    ['Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Chrome 131', 'ChromeOS'],
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36', 'Chrome 131', 'Linux'],
    ['curl/8.5.0', 'Unknown browser', 'Unknown operating system'],
    ['Mozilla/5.0 (compatible; SomethingNew/1.0)', 'Unknown browser', 'Unknown operating system'],
    ['', 'Unknown browser', 'Unknown operating system'],
    [undefined, 'Unknown browser', 'Unknown operating system'],
  ];
  for (const [ua, browser, os] of cases) expect(describeUserAgent(ua), String(ua)).toEqual({ browser, os });
});
