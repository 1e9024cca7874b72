# Operation: session_state
# Facility: WTSGetActiveConsoleSessionId + WTSQuerySessionInformationW(WTSSessionInfoEx = 25) through Add-Type;
#   WTSINFOEX_LEVEL1_W.SessionFlags: WTS_SESSIONSTATE_LOCK = 0, WTS_SESSIONSTATE_UNLOCK = 1,
#   WTS_SESSIONSTATE_UNKNOWN = 0xFFFFFFFF. The documented Windows 7 / Server 2008 R2 inversion of LOCK and
#   UNLOCK does not apply: the harness targets Windows 10 1803+ and Windows 11.
#   https://learn.microsoft.com/windows/win32/api/wtsapi32/ns-wtsapi32-wtsinfoex_level1_w
#   https://learn.microsoft.com/windows/win32/api/wtsapi32/nf-wtsapi32-wtsquerysessioninformationw
#   https://learn.microsoft.com/windows/win32/api/winbase/nf-winbase-wtsgetactiveconsolesessionid
# Facility: WTSQuerySessionInformationW(WTSUserName = 5, WTSDomainName = 7): the whole user and domain names
#   (WTSINFOEX_LEVEL1_W.UserName is WCHAR[USERNAME_LENGTH + 1], 20 characters)
#   https://learn.microsoft.com/windows/win32/api/wtsapi32/ne-wtsapi32-wts_info_class
# Parameters: {}
# Result: {"state": "no-user"|"locked"|"unlocked"|"unknown", "user"?, "session_id": int?}
param([Parameter(Mandatory = $true)][string]$ParamsBase64)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$P = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($ParamsBase64)) | ConvertFrom-Json
# C# 5 (the compiler Windows PowerShell 5.1 uses): no string interpolation, no out var.
Add-Type -TypeDefinition @'
using System;
using System.ComponentModel;
using System.Runtime.InteropServices;
public class HarnessConsoleSession {
    public uint SessionId;
    public uint SessionFlags;
    public string UserName;
    public string DomainName;
    [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
    struct WTSINFOEX_LEVEL1_W {
        public uint SessionId;
        public int SessionState;
        public int SessionFlags;
        [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 33)] public string WinStationName;
        [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 21)] public string UserName;
        [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 18)] public string DomainName;
        public long LogonTime;
        public long ConnectTime;
        public long DisconnectTime;
        public long LastInputTime;
        public long CurrentTime;
        public uint IncomingBytes;
        public uint OutgoingBytes;
        public uint IncomingFrames;
        public uint OutgoingFrames;
        public uint IncomingCompressedBytes;
        public uint OutgoingCompressedBytes;
    }
    // WTSINFOEXW: DWORD Level, then a union whose LARGE_INTEGER members align it to 8 bytes.
    [StructLayout(LayoutKind.Sequential)]
    struct WTSINFOEXW {
        public uint Level;
        public WTSINFOEX_LEVEL1_W Data;
    }
    [DllImport("kernel32.dll")]
    static extern uint WTSGetActiveConsoleSessionId();
    [DllImport("wtsapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
    static extern bool WTSQuerySessionInformationW(IntPtr server, uint sessionId, int infoClass, out IntPtr buffer, out uint bytes);
    [DllImport("wtsapi32.dll")]
    static extern void WTSFreeMemory(IntPtr memory);
    const int WTSSessionInfoEx = 25;
    const int WTSUserName = 5;
    const int WTSDomainName = 7;
    // The whole name (WTSINFOEX_LEVEL1_W.UserName holds 20 characters); null when the query fails.
    static string QueryString(uint id, int infoClass) {
        IntPtr buffer;
        uint bytes;
        if (!WTSQuerySessionInformationW(IntPtr.Zero, id, infoClass, out buffer, out bytes)) { return null; }
        try {
            return Marshal.PtrToStringUni(buffer);
        } finally {
            WTSFreeMemory(buffer);
        }
    }
    // null: no session is attached to the physical console (0xFFFFFFFF), e.g. during a session switch.
    public static HarnessConsoleSession Query() {
        uint id = WTSGetActiveConsoleSessionId();
        if (id == 0xFFFFFFFF) { return null; }
        IntPtr buffer;
        uint bytes;
        if (!WTSQuerySessionInformationW(IntPtr.Zero, id, WTSSessionInfoEx, out buffer, out bytes)) {
            throw new Win32Exception(Marshal.GetLastWin32Error());
        }
        try {
            WTSINFOEXW info = (WTSINFOEXW)Marshal.PtrToStructure(buffer, typeof(WTSINFOEXW));
            HarnessConsoleSession s = new HarnessConsoleSession();
            s.SessionId = id;
            s.SessionFlags = unchecked((uint)info.Data.SessionFlags);
            s.UserName = info.Data.UserName;
            s.DomainName = info.Data.DomainName;
            string user = QueryString(id, WTSUserName);
            if (user != null) { s.UserName = user; }
            string domain = QueryString(id, WTSDomainName);
            if (domain != null) { s.DomainName = domain; }
            return s;
        } finally {
            WTSFreeMemory(buffer);
        }
    }
}
'@
$s = [HarnessConsoleSession]::Query()
$result = [ordered]@{ state = 'no-user'; user = $null; session_id = $null }
if ($null -ne $s) {
    $result.session_id = [int]$s.SessionId
    # The console session at the sign-in screen (nobody logged on) has an empty user name.
    if ($s.UserName) {
        $result.user = $s.UserName
        if ($s.DomainName) { $result.user = $s.DomainName + '\' + $s.UserName }
        switch ($s.SessionFlags) {
            0 { $result.state = 'locked' }
            1 { $result.state = 'unlocked' }
            # WTS_SESSIONSTATE_UNKNOWN (0xFFFFFFFF, seen on Windows 10 21H2 right after a switch): the caller polls again.
            default { $result.state = 'unknown' }
        }
    }
}
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue
$json = ConvertTo-Json -InputObject $result -Compress -Depth 8
[regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
