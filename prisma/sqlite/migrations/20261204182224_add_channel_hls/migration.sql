-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_VirtualLive" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "sourceType" TEXT NOT NULL,
    "vodResourceId" TEXT,
    "sourceUrl" TEXT,
    "backupUrl" TEXT,
    "failoverAfterFailures" INTEGER NOT NULL DEFAULT 3,
    "failoverAfterMs" INTEGER NOT NULL DEFAULT 10000,
    "liveTranscode" TEXT NOT NULL DEFAULT 'AUTO',
    "activeSource" TEXT NOT NULL DEFAULT 'PRIMARY',
    "slateVodResourceId" TEXT,
    "loop" BOOLEAN NOT NULL DEFAULT true,
    "desiredState" TEXT NOT NULL DEFAULT 'STOPPED',
    "status" TEXT NOT NULL DEFAULT 'STOPPED',
    "errorString" TEXT,
    "workerId" TEXT,
    "startedAt" DATETIME,
    "stoppedAt" DATETIME,
    "connectTimeoutMs" INTEGER NOT NULL DEFAULT 10000,
    "rtspTransport" TEXT NOT NULL DEFAULT 'TCP',
    "reconnectAttempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" DATETIME,
    "maxReconnectAttempts" INTEGER,
    "startCount" INTEGER NOT NULL DEFAULT 0,
    "restartCount" INTEGER NOT NULL DEFAULT 0,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "recordingEnabled" BOOLEAN NOT NULL DEFAULT false,
    "recordingSegmentSeconds" INTEGER NOT NULL DEFAULT 60,
    "recordingRetainHours" REAL NOT NULL DEFAULT 24,
    "snapshotEnabled" BOOLEAN NOT NULL DEFAULT false,
    "snapshotIntervalSeconds" INTEGER NOT NULL DEFAULT 10,
    "snapTakenAt" DATETIME,
    "onDemand" BOOLEAN NOT NULL DEFAULT false,
    "touchDurationSeconds" INTEGER NOT NULL DEFAULT 60,
    "idleDelaySeconds" INTEGER NOT NULL DEFAULT 10,
    "touchedAt" DATETIME,
    "stopReason" TEXT,
    "hls" BOOLEAN NOT NULL DEFAULT true,
    "ownerNodeId" TEXT,
    "leaseEpoch" INTEGER NOT NULL DEFAULT 0,
    "leaseExpiresAt" DATETIME,
    CONSTRAINT "VirtualLive_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "VirtualLive_slateVodResourceId_fkey" FOREIGN KEY ("slateVodResourceId") REFERENCES "VodResource" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_VirtualLive" ("activeSource", "backupUrl", "connectTimeoutMs", "createdAt", "desiredState", "errorString", "failoverAfterFailures", "failoverAfterMs", "id", "idleDelaySeconds", "leaseEpoch", "leaseExpiresAt", "liveTranscode", "loop", "maxReconnectAttempts", "name", "nextAttemptAt", "onDemand", "ownerNodeId", "reconnectAttempts", "recordingEnabled", "recordingRetainHours", "recordingSegmentSeconds", "restartCount", "rtspTransport", "slateVodResourceId", "snapTakenAt", "snapshotEnabled", "snapshotIntervalSeconds", "sourceType", "sourceUrl", "startCount", "startedAt", "status", "stopReason", "stoppedAt", "touchDurationSeconds", "touchedAt", "updatedAt", "vodResourceId", "workerId") SELECT "activeSource", "backupUrl", "connectTimeoutMs", "createdAt", "desiredState", "errorString", "failoverAfterFailures", "failoverAfterMs", "id", "idleDelaySeconds", "leaseEpoch", "leaseExpiresAt", "liveTranscode", "loop", "maxReconnectAttempts", "name", "nextAttemptAt", "onDemand", "ownerNodeId", "reconnectAttempts", "recordingEnabled", "recordingRetainHours", "recordingSegmentSeconds", "restartCount", "rtspTransport", "slateVodResourceId", "snapTakenAt", "snapshotEnabled", "snapshotIntervalSeconds", "sourceType", "sourceUrl", "startCount", "startedAt", "status", "stopReason", "stoppedAt", "touchDurationSeconds", "touchedAt", "updatedAt", "vodResourceId", "workerId" FROM "VirtualLive";
DROP TABLE "VirtualLive";
ALTER TABLE "new_VirtualLive" RENAME TO "VirtualLive";
CREATE INDEX "VirtualLive_desiredState_idx" ON "VirtualLive"("desiredState");
CREATE INDEX "VirtualLive_slateVodResourceId_idx" ON "VirtualLive"("slateVodResourceId");
CREATE INDEX "VirtualLive_ownerNodeId_idx" ON "VirtualLive"("ownerNodeId");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
